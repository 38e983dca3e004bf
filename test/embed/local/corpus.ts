/** A tiny three-topic corpus for semantic sanity checks of the local embedders. */
export const TOPIC_CORPUS: { topic: string; text: string }[] = [
  { topic: 'cooking', text: 'Chop the garlic and onions, then fry them in butter until golden.' },
  { topic: 'cooking', text: 'Simmer the tomato sauce with garlic and basil for twenty minutes.' },
  { topic: 'cooking', text: 'Bake the bread in a hot oven; the dough needs butter, flour and yeast.' },
  { topic: 'cooking', text: 'A good sauce starts with onions and garlic browned in a heavy pan.' },
  { topic: 'cooking', text: 'Whisk flour and butter into a roux, then add milk to make the sauce.' },
  { topic: 'cooking', text: 'Roast the vegetables in the oven with olive oil, garlic and salt.' },
  { topic: 'astronomy', text: 'The telescope captured images of a distant spiral galaxy.' },
  { topic: 'astronomy', text: 'Astronomers measured the light of stars orbiting the black hole.' },
  { topic: 'astronomy', text: 'A new planet was found orbiting a nearby star with the space telescope.' },
  { topic: 'astronomy', text: 'The galaxy contains billions of stars and clouds of interstellar gas.' },
  {
    topic: 'astronomy',
    text: 'Light from the distant quasar reached the telescope after billions of years.',
  },
  { topic: 'astronomy', text: 'The planet orbits its star every three days, too hot for water.' },
  { topic: 'finance', text: 'The central bank raised interest rates to slow inflation.' },
  { topic: 'finance', text: 'Bond yields rose as investors expected higher interest rates.' },
  { topic: 'finance', text: 'The company issued new shares and its stock price fell.' },
  { topic: 'finance', text: 'Inflation erodes the value of savings unless interest rates rise.' },
  { topic: 'finance', text: 'Investors sold stocks and bought government bonds for safety.' },
  { topic: 'finance', text: 'The bank lends money to companies at a fixed interest rate.' },
];
